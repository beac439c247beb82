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
				return nil, cfg.Errorf(at, "%v", err)
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
	case rc.ModelFile != "":
		s, err := compile(path+".model_file", config.Schema{File: rc.ModelFile})
		if err != nil {
			return nil, []error{err}
		}
		return model.Single(s), nil
	case rc.Model.IsSet():
		s, err := compile(path+".model", rc.Model)
		if err != nil {
			return nil, []error{err}
		}
		return model.Single(s), nil
	}
	var errs []error
	models := make(map[string]*model.Schema, len(rc.Models))
	for _, name := range slices.Sorted(maps.Keys(rc.Models)) {
		s, err := compile(path+".models."+name, rc.Models[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		models[name] = s
	}
	// Validate reported an expression that does not parse.
	expr, err := route.ParseExpression(rc.ModelSelectionExpression)
	if err != nil || len(errs) > 0 {
		return nil, errs
	}
	return model.Selected(expr, models), nil
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
