package discovery

import (
	"context"
	"log/slog"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// authorizeXDS is ads.Server.Authorize for the TLS port, as istiod's: a proxy is
// authenticated (its mesh certificate, else its token) and gets only the configuration
// of its own identity: the namespace of its node ID and of its NAMESPACE metadata, and
// its SERVICE_ACCOUNT metadata when it sends one, must be its identity's. Streams on the
// plaintext port are not checked: that port trusts whoever reaches it (local mode, tests,
// a cluster that keeps it for Istio's compatibility).
func authorizeXDS(auths []ca.Authenticator, log *slog.Logger) func(context.Context, *corepb.Node) error {
	return func(ctx context.Context, node *corepb.Node) error {
		if !ca.OverTLS(ctx) {
			return nil
		}
		id, err := ca.Authenticate(ctx, auths...)
		if err != nil {
			log.Warn("xDS refused: proxy not authenticated", "proxy", node.GetId(), "reason", err)
			return status.Errorf(codes.Unauthenticated, "authentication failure: %v", err)
		}
		meta := node.GetMetadata().GetFields()
		ns := meta["NAMESPACE"].GetStringValue()
		if p, err := model.ParseNodeID(node.GetId()); err == nil {
			// The node ID's namespace is the one configuration is built for.
			if ns != "" && ns != p.Namespace {
				return refuse(log, node, id.String(), "its node ID's namespace "+p.Namespace+" and its NAMESPACE metadata "+ns+" disagree")
			}
			ns = p.Namespace
		}
		sa := meta["SERVICE_ACCOUNT"].GetStringValue()
		if (ns != "" && id.Namespace != ns) || (sa != "" && id.ServiceAccount != sa) {
			return refuse(log, node, id.String(), "the node asks for the configuration of namespace "+orString(ns, "(any)")+", service account "+orString(sa, "(any)"))
		}
		return nil
	}
}

// refuse is istiod's PermissionDenied "authorization failed", naming both identities.
func refuse(log *slog.Logger, node *corepb.Node, id, why string) error {
	log.Warn("xDS refused: the proxy's identity does not match its node", "proxy", node.GetId(), "identity", id, "reason", why)
	return status.Errorf(codes.PermissionDenied, "authorization failed: proxy %s authenticated as %s, but %s: a proxy gets only the configuration of its own identity", node.GetId(), id, why)
}
