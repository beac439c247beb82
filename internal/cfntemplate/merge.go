package cfntemplate

import (
	"errors"
	"maps"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// OwnedKeys are the top-level configuration keys a template sets; a
// configuration file merged with a template must not set them.
var OwnedKeys = []string{"stage", "api_id", "domain_name", "route_selection_expression", "stage_variables", "authorizer", "routes", "throttling"}

// Merge returns base with the keys the template owns (OwnedKeys) taken from
// r, its defaults filled, validated. base is the configuration file given
// with the template, or nil for the embedded default configuration, whose
// own routes never apply. A key of OwnedKeys that base's file sets is an
// error at that file's line. Problems in the template's part are reported at
// the template's lines. base and r are not changed.
func Merge(base *config.Config, r *Result) (*config.Config, error) {
	var errs []error
	if base == nil {
		base = config.Default()
	} else {
		for _, key := range OwnedKeys {
			if base.IsSet(key) {
				file, line := base.Position(key)
				errs = append(errs, &config.Error{File: file, Line: line, Path: key,
					Msg: "set by the template " + r.Template + "; remove it from this file (the template owns stage, api_id, domain_name, route_selection_expression, stage_variables, authorizer, routes and throttling)"})
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	c := *base
	t := r.Config
	c.Stage = t.Stage
	c.APIID = t.APIID
	c.DomainName = t.DomainName
	c.RouteSelectionExpression = t.RouteSelectionExpression
	c.StageVariables = maps.Clone(t.StageVariables)
	c.Authorizer = t.Authorizer
	c.Throttling = t.Throttling
	c.Routes = make(map[string]config.Route, len(t.Routes))
	for k, route := range t.Routes {
		route.Integration.Headers = maps.Clone(route.Integration.Headers)
		route.Integration.Lambda.Env = maps.Clone(route.Integration.Lambda.Env)
		c.Routes[k] = route
	}
	c.Authorizer.Lambda.Env = maps.Clone(c.Authorizer.Lambda.Env)
	c.FillDefaults()
	if err := c.Validate(); err != nil {
		return nil, r.relocate(err)
	}
	return &c, nil
}

// relocate points the problems with keys the template owns at the
// template's lines.
func (r *Result) relocate(err error) error {
	var out []error
	for _, e := range config.Leaves(err) {
		var ce *config.Error
		if errors.As(e, &ce) && owned(ce.Path) {
			moved := *ce
			moved.File, moved.Line = r.Template, r.line(ce.Path)
			e = &moved
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// line returns the template line of the config key path or of its nearest
// ancestor that has one.
func (r *Result) line(path string) int {
	for path != "" {
		if n, ok := r.lines[path]; ok {
			return n
		}
		if i := strings.LastIndexByte(path, '['); i > 0 && strings.HasSuffix(path, "]") {
			path = path[:i]
			continue
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func owned(path string) bool {
	for _, k := range OwnedKeys {
		if path == k || strings.HasPrefix(path, k+".") {
			return true
		}
	}
	return false
}
