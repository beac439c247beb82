package gateway

import (
	"errors"
	"maps"
	"slices"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/model"
	"github.com/wsgate/wsgate/internal/route"
)

// badRequestBody is the message of the frame a message refused by its
// route's model gets, and of its access log line.
const badRequestBody = "Bad request body"

// buildModels compiles the request validation of the route at key: nil
// when it has none. Every problem is an error at its configuration line;
// model files are read with readFile.
func buildModels(cfg *config.Config, key string, rc *config.Route, readFile func(string) ([]byte, error)) (*model.Set, []error) {
	if !rc.HasModel() {
		return nil, nil
	}
	path := "routes." + key
	compile := func(at string, s config.Schema) (*model.Schema, error) {
		if s.File == "" {
			sch, err := model.Compile(s.Doc)
			if err != nil {
				// cfg.Validate reported it.
				return nil, errReported
			}
			return sch, nil
		}
		data, err := readFile(s.File)
		if err != nil {
			// The error of os.ReadFile names the file.
			return nil, cfg.Errorf(at, "reading the model: %w", err)
		}
		sch, err := model.CompileJSON(data)
		if err != nil {
			return nil, cfg.Errorf(at, "%s: %v", s.File, err)
		}
		return sch, nil
	}
	switch {
	case rc.ModelFile != "", rc.Model.IsSet():
		at, s := path+".model", rc.Model
		if rc.ModelFile != "" {
			at, s = path+".model_file", config.Schema{File: rc.ModelFile}
		}
		sch, err := compile(at, s)
		if err != nil {
			return nil, reported(err)
		}
		return model.Single(sch), nil
	}
	var errs []error
	failed := false
	models := make(map[string]*model.Schema, len(rc.Models))
	for _, name := range slices.Sorted(maps.Keys(rc.Models)) {
		s, err := compile(path+".models."+name, rc.Models[name])
		if err != nil {
			failed = true
			errs = append(errs, reported(err)...)
			continue
		}
		models[name] = s
	}
	// Validate reported an expression that does not parse.
	expr, err := route.ParseExpression(rc.ModelSelectionExpression)
	if err != nil || failed {
		return nil, errs
	}
	return model.Selected(expr, models), nil
}

// reported returns err as a list of problems to report, empty when err is
// errReported.
func reported(err error) []error {
	if errors.Is(err, errReported) {
		return nil
	}
	return []error{err}
}

// validate checks a message of rt against the route's models: nil when it
// may go on, else the *model.Invalid that refuses it. A binary message is
// not JSON text, as for route selection, and is refused.
func (rt *Route) validate(data []byte, binary bool) *model.Invalid {
	if rt.Models == nil {
		return nil
	}
	if binary {
		return &model.Invalid{Detail: "a binary message is not JSON"}
	}
	var inv *model.Invalid
	if err := rt.Models.Validate(data); errors.As(err, &inv) {
		return inv
	}
	return nil
}
