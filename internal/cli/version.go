package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/version"
)

func init() { register(newVersionCmd) }

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print lucid's version, the commit it was built from and the Go version",
		Long: `Print lucid's version, the commit it was built from and the Go toolchain that built it
(lucid --version prints the same). A running proxy reports the same build in its admin API:
/server_info's "version" and the bootstrap node in /config_dump.`,
		Example: `  lucid version
  lucid version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			switch output {
			case "":
				_, err := fmt.Fprint(cmd.OutOrStdout(), info.Text())
				return err
			case "json":
				js, err := jsonIndent(info)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(js)
				return err
			}
			return fmt.Errorf("-o %q: want json, or nothing for text", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output: (text), json")
	return cmd
}
