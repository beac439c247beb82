package config

import "testing"

func TestIsSet(t *testing.T) {
	c, err := Parse("x.yaml", []byte("stage: dev\nroutes:\n  $default:\n    integration: {type: mock}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"stage": true, "routes": true, "routes.$default.integration.type": true,
		"api_id": false, "authorizer": false, "listen": false,
	} {
		if got := c.IsSet(path); got != want {
			t.Errorf("IsSet(%q) = %v, want %v", path, got, want)
		}
	}
	if (&Config{}).IsSet("stage") {
		t.Error("a Config built by hand sets no key")
	}
}
