package envconfig

import "testing"

func TestPositiveInt(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    int
		wantErr bool
	}{
		{"", 0, false},
		{"30", 30, false},
		{"0", 0, true},
		{"-5", 0, true},
		{"ten", 0, true},
		{"1.5", 0, true},
	} {
		t.Setenv("N", tc.value)
		got, err := PositiveInt("N")
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("PositiveInt(%q) = %d, %v; want %d, error %v", tc.value, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestRequired(t *testing.T) {
	t.Setenv("R", "")
	if _, err := Required("R"); err == nil {
		t.Error("empty value accepted")
	}
	t.Setenv("R", "table")
	if v, err := Required("R"); v != "table" || err != nil {
		t.Errorf("Required = %q, %v", v, err)
	}
}
