package cfntemplate

import (
	"maps"
	"slices"
	"strconv"

	"github.com/wsgate/wsgate/internal/config"
)

// AWS's account-level throttle: the rate or burst a stage or route setting
// that gives only the other one runs with.
const (
	accountRate  = 10000
	accountBurst = 5000
)

// routeSettingsProps is the table of a stage's DefaultRouteSettings and of
// each entry of its RouteSettings.
var routeSettingsProps = map[string]string{
	"ThrottlingRateLimit": "", "ThrottlingBurstLimit": "",
	"DataTraceEnabled":       "wsgate writes its own log (log.level in the -c config)",
	"DetailedMetricsEnabled": "wsgate's metrics are always by route (docs/metrics.md)",
	"LoggingLevel":           "wsgate writes its own log (log.level in the -c config)",
}

// stageThrottling maps the stage's DefaultRouteSettings to the top-level
// throttling and keeps its RouteSettings for routeThrottling, which runs
// once the routes are built.
func (b *builder) stageThrottling(r *resource) {
	if rl, ok := b.routeSettings(r, "DefaultRouteSettings", "DefaultRouteSettings", nil); ok {
		b.t.result.Config.Throttling = rl
		b.line("throttling", r.keyLine("DefaultRouteSettings"))
	}
	v, set, ok := b.value(r, "RouteSettings")
	if !ok || !set {
		return
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		b.t.errorf(r.keyLine("RouteSettings"), propPath(r, "RouteSettings"), "want a mapping of route keys to route settings, got %s", kind(v))
		return
	}
	b.stageRoutes = r
	b.routeSettingsByKey = m
}

// routeThrottling applies the stage's RouteSettings to the built routes.
func (b *builder) routeThrottling() {
	r := b.stageRoutes
	if r == nil {
		return
	}
	cfg := b.t.result.Config
	for _, key := range slices.Sorted(maps.Keys(b.routeSettingsByKey)) {
		prop := "RouteSettings." + key
		route, exists := cfg.Routes[key]
		switch {
		case !exists:
			b.t.errorf(r.keyLine("RouteSettings"), propPath(r, prop), "the API has no route %q", key)
			continue
		case key == config.RouteDisconnect:
			b.t.ignore(Ignored{LogicalID: r.id, Type: r.typ, Property: prop, Line: r.keyLine("RouteSettings"),
				Reason: "wsgate does not throttle $disconnect, which no client request causes"})
			continue
		}
		val := b.routeSettingsByKey[key]
		if rl, ok := b.routeSettings(r, "RouteSettings", prop, val); ok {
			route.Throttling = rl
			cfg.Routes[key] = route
			b.line("routes."+key+".throttling", r.keyLine("RouteSettings"))
		}
	}
}

// routeSettings reads one route-settings object: the property prop of r
// (under the template property named key), already evaluated as val when
// val is not nil. It reports ok when the object sets throttling.
func (b *builder) routeSettings(r *resource, key, prop string, val any) (config.RateLimit, bool) {
	line := r.keyLine(key)
	if val == nil {
		v, set, ok := b.value(r, key)
		if !ok || !set {
			return config.RateLimit{}, false
		}
		val = v
	}
	m, isMap := val.(map[string]any)
	if !isMap {
		b.t.errorf(line, propPath(r, prop), "want a mapping of route settings, got %s", kind(val))
		return config.RateLimit{}, false
	}
	valid := true
	for _, k := range slices.Sorted(maps.Keys(m)) {
		reason, known := routeSettingsProps[k]
		switch {
		case !known:
			b.t.errorf(line, propPath(r, prop+"."+k), "property %s of route settings is not supported", k)
			valid = false
		case reason != "":
			b.t.ignore(Ignored{LogicalID: r.id, Type: r.typ, Property: prop + "." + k, Line: line, Reason: reason})
		}
	}
	rate, rateSet, rateOK := b.settingNumber(line, propPath(r, prop+".ThrottlingRateLimit"), m["ThrottlingRateLimit"], false)
	burst, burstSet, burstOK := b.settingNumber(line, propPath(r, prop+".ThrottlingBurstLimit"), m["ThrottlingBurstLimit"], true)
	if !valid || !rateOK || !burstOK || (!rateSet && !burstSet) {
		return config.RateLimit{}, false
	}
	if !rateSet {
		rate = accountRate
	}
	if !burstSet {
		burst = accountBurst
	}
	return config.RateLimit{Rate: rate, Burst: int(burst)}, true
}

// settingNumber reads a throttling limit: absent (nil), or a number above
// zero, whole when whole is set. AWS takes 0 to refuse every request,
// which wsgate's throttling cannot say: it is an error.
func (b *builder) settingNumber(line int, path string, v any, whole bool) (n float64, set, ok bool) {
	if v == nil || v == noValue {
		return 0, false, true
	}
	s, isStr := v.(string)
	if !isStr {
		b.t.errorf(line, path, "want a number, got %s", kind(v))
		return 0, false, false
	}
	var err error
	if whole {
		var i int
		i, err = strconv.Atoi(s)
		n = float64(i)
	} else {
		n, err = strconv.ParseFloat(s, 64)
	}
	switch {
	case err != nil && whole:
		b.t.errorf(line, path, "want a whole number, got %q", s)
		return 0, false, false
	case err != nil:
		b.t.errorf(line, path, "want a number, got %q", s)
		return 0, false, false
	case n == 0:
		b.t.errorf(line, path, "0 makes AWS refuse every request on the route, which wsgate's throttling cannot express; remove the route instead")
		return 0, false, false
	case n < 0:
		b.t.errorf(line, path, "must not be negative, got %s", s)
		return 0, false, false
	}
	return n, true, true
}
