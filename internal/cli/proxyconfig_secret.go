package cli

import (
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lucid-mesh/lucid/internal/diag/configview"
)

// proxy-config secret and bootstrap: istioctl's two other config-dump views.

func newPCSecret(t *target) *cobra.Command {
	return newPCView(t, pcView{
		use: "secret", aliases: []string{"secrets", "s"},
		short:   "Secrets: RESOURCE NAME TYPE STATUS VALID CERT SERIAL NUMBER NOT AFTER NOT BEFORE",
		example: "  lucid proxy-config secret productpage",
		flags:   func(*pflag.FlagSet) {},
		show: func(v *pcRead, _ string) error {
			return configview.Secrets(v.out, v.dump, time.Now())
		},
	})
}

func newPCBootstrap(t *target) *cobra.Command {
	return newPCView(t, pcView{
		use: "bootstrap", aliases: []string{"b"},
		short:   "The proxy's build, as istioctl's bootstrap summary shows it",
		example: "  lucid proxy-config bootstrap productpage",
		flags:   func(*pflag.FlagSet) {},
		show: func(v *pcRead, _ string) error {
			return configview.Bootstrap(v.out, v.dump.Node)
		},
	})
}
