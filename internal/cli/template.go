package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/internal/cfntemplate"
	"github.com/wsgate/wsgate/internal/config"
)

// templateFlags are the flags that run a CloudFormation or SAM template.
type templateFlags struct {
	path   string
	params paramFlag
	region string
	stack  string
}

// addTemplateFlags defines -template, -parameter, -region and -stack-name
// on fs.
func addTemplateFlags(fs *flag.FlagSet) *templateFlags {
	tf := &templateFlags{params: paramFlag{}}
	fs.StringVar(&tf.path, "template", "", "run the WebSocket API the CloudFormation/SAM template `file` describes")
	fs.Var(tf.params, "parameter", "template parameter `NAME=VALUE`, overriding its Default (repeatable)")
	fs.StringVar(&tf.region, "region", "", "the template's AWS::Region and the region of its functions (default us-east-1)")
	fs.StringVar(&tf.stack, "stack-name", "", "the template's AWS::StackName (default: the template's directory name)")
	return tf
}

// check refuses the template's other flags without -template.
func (tf *templateFlags) check() error {
	if tf.path == "" && (len(tf.params) > 0 || tf.region != "" || tf.stack != "") {
		return usageError{errors.New("-parameter, -region and -stack-name go with -template")}
	}
	return nil
}

func (tf *templateFlags) load() (*cfntemplate.Result, error) {
	return cfntemplate.Load(tf.path, cfntemplate.Options{Parameters: tf.params, Region: tf.region, StackName: tf.stack})
}

// buildConfig returns the configuration serve and validate run: the -c
// file (or the embedded default), merged with the template when there is
// one.
func buildConfig(path string, tf *templateFlags) (*config.Config, *cfntemplate.Result, error) {
	if tf.path == "" {
		cfg, err := loadConfig(path)
		return cfg, nil, err
	}
	var base *config.Config
	if path != "" {
		var err error
		if base, err = config.Load(path); err != nil {
			return nil, nil, err
		}
	}
	r, err := tf.load()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := cfntemplate.Merge(base, r)
	if err != nil {
		return nil, nil, err
	}
	return cfg, r, nil
}

// logIgnored logs, once each, what the template holds that wsgate ignores.
func logIgnored(logger *slog.Logger, r *cfntemplate.Result) {
	if r == nil {
		return
	}
	for _, i := range r.Ignored {
		attrs := []any{"resource", i.LogicalID, "type", i.Type}
		if i.Property != "" {
			attrs = append(attrs, "property", i.Property)
		}
		logger.Info("template: ignored", append(attrs, "reason", i.Reason)...)
	}
}

// importTemplate prints the wsgate configuration equivalent to a template.
func importTemplate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", stderr)
	tf := addTemplateFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if tf.path == "" {
		return usageError{errors.New("-template FILE is required")}
	}
	r, err := tf.load()
	if err != nil {
		return err
	}
	_, err = stdout.Write(r.YAML())
	return err
}

// paramFlag collects repeated -parameter NAME=VALUE flags.
type paramFlag map[string]string

func (p paramFlag) String() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (p paramFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want NAME=VALUE", s)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("parameter %s given twice", name)
	}
	p[name] = value
	return nil
}
