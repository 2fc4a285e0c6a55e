package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/reqplane/reqplane/internal/config"
)

func newConfigCmd(e env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration and where each value came from",
		Long: `Print every configuration variable reqplane reads, its effective value and its source:
"env" (set in the environment), "default", or "derived: <rule>" (decided by another variable).
Secrets are masked. An invalid variable makes the command fail, naming the variable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			if asJSON {
				return writeConfigJSON(cmd.OutOrStdout(), cfg.Vars)
			}
			return writeConfigTable(cmd.OutOrStdout(), cfg.Vars)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func writeConfigTable(w io.Writer, vars []config.Var) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tSOURCE\tNOTE")
	for _, v := range vars {
		value := v.Value
		switch {
		case value == "" && v.Source == config.SourceEnv:
			value = `""` // set to a value that means empty, e.g. DYN_HTTP_RPC_ROOT_PATH=/
		case value == "":
			value = "(unset)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, value, v.Source, v.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads every cell, the empty notes too; trailing blanks only get in the way of grep.
	var out strings.Builder
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// configJSON is the --json document; an object, so fields can be added later.
type configJSON struct {
	Variables []config.Var `json:"variables"`
}

func writeConfigJSON(w io.Writer, vars []config.Var) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(configJSON{Variables: vars})
}
