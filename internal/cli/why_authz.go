package cli

import "github.com/spf13/cobra"

// authzFlags are `lucid why`'s authorization flags: where the request arrives and who sends it.
type authzFlags struct {
	inbound   bool
	principal string
}

func (a *authzFlags) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&a.inbound, "inbound", false, "the request arrives at the workload's sidecar (its inbound port) instead of leaving through it")
	f.StringVar(&a.principal, "principal", "", "the client's mTLS identity for AuthorizationPolicies, e.g. cluster.local/ns/foo/sa/sleep (none: plaintext)")
}
