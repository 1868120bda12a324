package agent

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// writeSupplies lays out a fake /sys/class/power_supply: name → files.
func writeSupplies(t *testing.T, supplies map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, files := range supplies {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for f, v := range files {
			if err := os.WriteFile(filepath.Join(dir, name, f), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func TestOnBatteryReadsPowerSupplies(t *testing.T) {
	bat := func(status string) map[string]string { return map[string]string{"type": "Battery", "status": status} }
	mains := func(online string) map[string]string { return map[string]string{"type": "Mains", "online": online} }
	for _, tc := range []struct {
		name     string
		supplies map[string]map[string]string
		want     bool
	}{
		{"laptop unplugged", map[string]map[string]string{"BAT0": bat("Discharging"), "AC": mains("0")}, true},
		{"laptop plugged in", map[string]map[string]string{"BAT0": bat("Charging"), "AC": mains("1")}, false},
		{"full on mains", map[string]map[string]string{"BAT0": bat("Full"), "AC": mains("1")}, false},
		// Some firmware reports Discharging while on mains (a battery
		// held at a charge threshold): online mains wins.
		{"discharging but mains online", map[string]map[string]string{"BAT0": bat("Discharging"), "ADP1": mains("1")}, false},
		{"second battery discharging", map[string]map[string]string{"BAT0": bat("Not charging"), "BAT1": bat("Discharging")}, true},
		{"desktop: mains only", map[string]map[string]string{"AC": mains("1")}, false},
		{"a mouse's battery is not the machine's", map[string]map[string]string{"hidpp_battery_0": {"type": "Battery", "scope": "Device", "status": "Discharging"}, "AC": mains("1")}, false},
		{"no supplies", map[string]map[string]string{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OnBattery(writeSupplies(t, tc.supplies))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("on battery = %v, want %v", got, tc.want)
			}
		})
	}
	// A machine without the directory (a server, a container) is on mains.
	if got, err := OnBattery(filepath.Join(t.TempDir(), "absent")); err != nil || got {
		t.Fatalf("missing power_supply directory: on battery = %v, %v; want false, nil", got, err)
	}
}

func TestMeteredFromNetworkManager(t *testing.T) {
	answer := func(out string, err error) runCommand {
		return func(_ context.Context, name string, args ...string) ([]byte, error) {
			if name != "busctl" || args[len(args)-1] != "Metered" {
				t.Fatalf("ran %s %v: want busctl … Metered", name, args)
			}
			return []byte(out), err
		}
	}
	for _, tc := range []struct {
		name    string
		run     runCommand
		want    bool
		wantErr bool
	}{
		{"yes", answer("u 1\n", nil), true, false},
		{"guessed yes (a phone's hotspot)", answer("u 3\n", nil), true, false},
		{"no", answer("u 2\n", nil), false, false},
		{"guessed no", answer("u 4\n", nil), false, false},
		{"unknown", answer("u 0\n", nil), false, false},
		{"no NetworkManager on the bus", answer("", errors.New("exit status 1")), false, false},
		{"no busctl", answer("", exec.ErrNotFound), false, false},
		{"garbage", answer("s \"yes\"\n", nil), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := meteredNM(context.Background(), tc.run)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("metered = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseToggle(t *testing.T) {
	for in, want := range map[string]Toggle{"": ToggleAuto, "auto": ToggleAuto, "YES": ToggleYes, " no ": ToggleNo} {
		if got, err := ParseToggle(in); err != nil || got != want {
			t.Fatalf("ParseToggle(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseToggle("sometimes"); err == nil || err.Error() != `"sometimes": want auto, yes or no` {
		t.Fatalf("ParseToggle(sometimes): %v", err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
