package server

import (
	"os"
	"strings"
	"testing"
)

// TestConfigurationDocumented keeps docs/configuration.md in step with the
// settings: every key, environment variable and flag must appear there.
func TestConfigurationDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		for _, want := range []string{"`" + s.Key + "`", "`" + s.Env + "`", "`--" + s.Flag + "`"} {
			if !strings.Contains(string(doc), want) {
				t.Errorf("docs/configuration.md does not mention %s", want)
			}
		}
		if s.Usage == "" {
			t.Errorf("setting %s has no help text", s.Key)
		}
	}
}
