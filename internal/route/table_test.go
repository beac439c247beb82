package route

import "testing"

func TestTableSelect(t *testing.T) {
	withDefault := NewTable(map[string]string{
		Connect: "connect", Disconnect: "disconnect", Default: "default", "sendmessage": "send",
	})
	noDefault := NewTable(map[string]string{"sendmessage": "send"})
	tests := []struct {
		name     string
		table    *Table[string]
		key      string
		wantName string
		want     string
		wantOK   bool
	}{
		{"exact", withDefault, "sendmessage", "sendmessage", "send", true},
		{"case sensitive", withDefault, "SendMessage", Default, "default", true},
		{"unknown falls back", withDefault, "nope", Default, "default", true},
		{"empty key falls back", withDefault, "", Default, "default", true},
		{"$connect is not a message route", withDefault, Connect, Default, "default", true},
		{"$disconnect is not a message route", withDefault, Disconnect, Default, "default", true},
		{"no default", noDefault, "nope", "", "", false},
		{"exact without default", noDefault, "sendmessage", "sendmessage", "send", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, got, ok := tt.table.Select(tt.key)
			if name != tt.wantName || got != tt.want || ok != tt.wantOK {
				t.Fatalf("Select(%q) = %q, %q, %v; want %q, %q, %v", tt.key, name, got, ok, tt.wantName, tt.want, tt.wantOK)
			}
		})
	}
}
