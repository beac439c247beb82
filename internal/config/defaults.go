package config

import (
	"maps"
	"time"
)

// FillDefaults replaces every zero field of c with its default. It is the
// only place defaults are applied; Load, Parse and Default call it, and a
// caller that builds a Config by hand calls it before use. Non-zero fields are
// left alone, so FillDefaults is idempotent.
//
// FillDefaults writes to c.Routes in place. An empty Routes becomes a new map
// holding one $default route with a mock integration that echoes each
// message back.
func (c *Config) FillDefaults() {
	setDefault(&c.Listen, ":8080")
	setDefault(&c.APIID, "local")
	setDefault(&c.RouteSelectionExpression, "$request.body.action")
	setDefault(&c.BinaryFrames, BinaryReject)
	setDefault(&c.ShutdownTimeout, 10*time.Second)
	c.TLS.fillDefaults()

	l := &c.Limits
	setDefault(&l.MaxFrameBytes, 32<<10)
	setDefault(&l.MaxMessageBytes, 128<<10)
	setDefault(&l.IdleTimeout, 10*time.Minute)
	setDefault(&l.MaxConnectionDuration, 2*time.Hour)
	setDefault(&l.PingInterval, 30*time.Second)
	setDefault(&l.OutboundQueueBytes, 1<<20)
	setDefault(&l.HandshakeTimeout, 10*time.Second)
	setDefault(&l.CloseDrainTimeout, 2*time.Second)
	setDefault(&l.MaxInflightMessages, 64)
	setDefault(&l.InflightBudgetMessages, 16384)
	setDefault(&l.InflightBudgetBytes, 64<<20)
	setDefault(&l.UserLimitPolicy, RefuseNewest)
	setDefault(&l.MaxSubscriptionsPerConnection, 128)

	if len(c.Routes) == 0 {
		c.Routes = map[string]Route{
			RouteDefault: {Integration: Integration{Type: IntegrationMock}, RouteResponse: true},
		}
	}
	for key, r := range c.Routes {
		if r.Builtin != "" {
			continue
		}
		setDefault(&r.Integration.Timeout, 29*time.Second)
		if r.Integration.Type == IntegrationMock {
			setDefault(&r.Integration.StatusCode, 200)
		}
		if r.Integration.Type == IntegrationNATS || r.Integration.Type == IntegrationRedis || r.Integration.Type == IntegrationPostgres || r.Integration.Type == IntegrationAMQP {
			setDefault(&r.Integration.Payload, PayloadEvent)
		}
		if isAWSPublish(r.Integration.Type) {
			r.Integration.fillAWSDefaults()
		}
		if r.Integration.Type == IntegrationAMQP && r.Integration.Declare {
			setDefault(&r.Integration.ExchangeType, "topic")
		}
		if r.Integration.Type == IntegrationLambda {
			r.Integration.Lambda.fillDefaults()
		}
		c.Routes[key] = r
	}

	c.Authorizer.fillDefaults()

	m := &c.Management
	setDefault(&m.Listen, "127.0.0.1:9090")
	setDefault(&m.ReadTimeout, time.Minute)
	setDefault(&m.IdleTimeout, 2*time.Minute)
	setDefault(&m.MaxBodyBytesInFlight, 64<<20)
	m.TLS.fillDefaults()
	if m.Auth.SigV4.Configured() {
		setDefault(&m.Auth.SigV4.Region, "us-east-1")
	}
	if m.Enabled == nil {
		on := true
		m.Enabled = &on
	}
	if m.Metrics == nil {
		on := *m.Enabled
		m.Metrics = &on
	}
	if m.UI == nil {
		on := *m.Enabled
		m.UI = &on
	}

	setDefault(&c.Registry.Type, RegistryMemory)
	setDefault(&c.Registry.Prefix, "wsgate")
	setDefault(&c.Registry.HeartbeatInterval, time.Second)
	setDefault(&c.Registry.NodeTimeout, 5*time.Second)
	setDefault(&c.Registry.Timeout, 2*time.Second)
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "text")
	if c.AccessLog.Enabled() {
		setDefault(&c.AccessLog.Output, "stdout")
	}
}

// setDefault sets *p to def when *p is the zero value.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// withDefaults returns a copy of c with its defaults filled, leaving c and
// its Routes map untouched.
func (c *Config) withDefaults() *Config {
	d := *c
	d.Routes = maps.Clone(c.Routes)
	d.FillDefaults()
	return &d
}
