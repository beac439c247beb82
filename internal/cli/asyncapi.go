package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/wsgate/wsgate/internal/asyncapi"
)

// asyncAPI prints the AsyncAPI 3.0 document of the configuration serve
// would run: the -c file or the embedded default, or a template.
func asyncAPI(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("asyncapi", stderr)
	path := fs.String("c", "", "config `file` (default: the embedded default config)")
	format := fs.String("format", "yaml", "output `format`: yaml or json")
	tf := addTemplateFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if err := tf.check(); err != nil {
		return err
	}
	write := asyncapi.YAML
	switch *format {
	case "yaml":
	case "json":
		write = asyncapi.JSON
	default:
		return usageError{fmt.Errorf("-format %q: want yaml or json", *format)}
	}
	cfg, _, err := buildConfig(*path, tf)
	if err != nil {
		return err
	}
	out, err := write(cfg, asyncapi.Options{ReadFile: os.ReadFile})
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
