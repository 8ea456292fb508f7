// Package simulate runs one request through a proxy's real configuration without sending
// it, for `lucid why`. It sits at the end of the diagnostics flow:
//
//	admin /config_dump?include_eds → inspect (xdsclient decoders) → resource.Snapshot
//	    → simulate: listener, chain (proxy's dispatch) → forward.Decide (route configuration,
//	      virtual host, route, the route's own answer) → forward.Target / PickHost (cluster,
//	      endpoint), or forward.TCPUpstream for a tcp_proxy chain → rendered
//
// It decides nothing itself: the listener and chain come from the proxy's exported
// dispatch (Destination, OutboundListeners, ChainFor, ChainForConnection, InspectsTLS,
// RouteConfigOf, PlaintextRoutes, PassthroughRoutes), and every outcome (a forward, or a
// local reply with its flag, body and x-lucid-error) is the one forward's decision step
// gives the proxy, so the explanation it prints is the one the proxy sends, word for word.
// What it adds is rendering: each route's reason for not matching (route.Explain), every
// cluster a weighted split can reach, the endpoints with their run-time health.
package simulate
