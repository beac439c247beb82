package config

import "testing"

func TestAccessLogRules(t *testing.T) {
	checkProblems(t, "access_log: {format: clf}")
	checkProblems(t, "access_log:\n  format: >-\n    {\"id\":\"$context.requestId\",\n    \"st\":\"$context.status\"}\n  output: /tmp/access.log\n")
	checkProblems(t, "log:\n  level: info\naccess_log:\n  output: stdout\n  format: '$context.requestId $context.statsu'\n",
		`wsgate.yaml:5: access_log.format: unknown variable $context.statsu (did you mean $context.status?)`)
	checkProblems(t, "access_log:\n  output: /tmp/x.log\n",
		`wsgate.yaml:2: access_log.output: is set but access_log.format is not; set a format (clf, json, xml, csv or $context variables) to turn the access log on`)
	checkProblems(t, "access_log:\n  format: |\n    $context.requestId\n    $context.status\n",
		`wsgate.yaml:2: access_log.format: the format must be one line (a YAML folded scalar, >-, joins lines with spaces)`)
	checkProblems(t, "access_log:\n  format: clf\n  output: \"a\\nb\"\n",
		`wsgate.yaml:3: access_log.output: must be stdout, stderr or a file path on one line`)
}

func TestAccessLogDefaults(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte("access_log: {format: json}"))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessLog.Output != "stdout" || !c.AccessLog.Enabled() {
		t.Errorf("access_log = %+v; want output stdout", c.AccessLog)
	}
	if d := Default(); d.AccessLog.Enabled() || d.AccessLog.Output != "" {
		t.Errorf("the default config has an access log: %+v", d.AccessLog)
	}
}
