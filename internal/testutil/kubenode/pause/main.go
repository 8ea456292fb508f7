// Command pause is the pod sandbox's image for the test node (internal/testutil/kubenode):
// it holds the pod's namespaces by doing nothing until it is asked to stop, as Kubernetes'
// own pause container does.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
