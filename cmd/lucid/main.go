// Command lucid is the whole Lucid service mesh in one binary: control plane, sidecar,
// injector and CLI. It hands its arguments to internal/cli.
package main

import (
	"os"

	"github.com/lucid-mesh/lucid/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
