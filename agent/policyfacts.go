package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Toggle is a fact about the peer's system that it either reads from the
// system (ToggleAuto) or is told (ToggleYes, ToggleNo): whether it is on a
// metered network, whether it runs on battery.
type Toggle string

// The toggles; "" reads as ToggleAuto.
const (
	ToggleAuto Toggle = "auto"
	ToggleYes  Toggle = "yes"
	ToggleNo   Toggle = "no"
)

// ParseToggle parses auto, yes or no ("" is auto).
func ParseToggle(s string) (Toggle, error) {
	switch t := Toggle(strings.ToLower(strings.TrimSpace(s))); t {
	case "":
		return ToggleAuto, nil
	case ToggleAuto, ToggleYes, ToggleNo:
		return t, nil
	}
	return "", fmt.Errorf("%q: want auto, yes or no", s)
}

// DefaultPowerSupplyDir is where Linux lists power supplies.
const DefaultPowerSupplyDir = "/sys/class/power_supply"

// DefaultFactsPoll is how often a peer re-reads its metered and battery
// state from the system (PeerConfig.FactsPoll).
const DefaultFactsPoll = 30 * time.Second

// OnBattery reads a power-supply directory laid out as Linux's
// /sys/class/power_supply: the machine runs on battery when a supply of
// type Battery reports status Discharging and no supply of type Mains is
// online. Peripherals' batteries (scope Device) do not count. A missing
// directory (a server, a container) is not on battery.
func OnBattery(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("power supplies in %s: %w", dir, err)
	}
	discharging, mains := false, false
	for i, e := range ents {
		if i >= 64 { // a real machine has a handful
			break
		}
		read := func(name string) string {
			b, err := os.ReadFile(filepath.Join(dir, e.Name(), name))
			if err != nil || len(b) > 64 {
				return ""
			}
			return strings.TrimSpace(string(b))
		}
		if read("scope") == "Device" {
			continue // a mouse's or a headset's battery, not the machine's
		}
		switch read("type") {
		case "Battery":
			if read("status") == "Discharging" {
				discharging = true
			}
		case "Mains":
			if read("online") == "1" {
				mains = true
			}
		}
	}
	return discharging && !mains, nil
}

// runCommand runs a system command and returns its standard output.
type runCommand func(ctx context.Context, name string, args ...string) ([]byte, error)

func execCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).Output()
}

// NetworkManager's NMMetered values (its Metered property).
const (
	nmMeteredYes      = 1
	nmMeteredGuessYes = 3
)

// meteredNM reads NetworkManager's Metered property (the primary
// connection's, as NetworkManager judges it) from the system D-Bus with
// busctl: metered when it says yes or guesses yes. Without busctl, or with
// no NetworkManager on the bus, the network is taken as not metered.
func meteredNM(ctx context.Context, run runCommand) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := run(ctx, "busctl", "--system", "get-property",
		"org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager", "Metered")
	if err != nil {
		// No busctl, no system bus, or no NetworkManager on it: nothing
		// says the network is metered.
		return false, nil
	}
	return parseNMMetered(string(out))
}

// parseNMMetered parses busctl's answer for a uint32 property: "u 4".
func parseNMMetered(s string) (bool, error) {
	f := strings.Fields(s)
	if len(f) != 2 || f[0] != "u" {
		return false, fmt.Errorf("NetworkManager Metered property: unexpected answer %q (want \"u N\")", strings.TrimSpace(s))
	}
	v, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return false, fmt.Errorf("NetworkManager Metered property: %q is not a number", f[1])
	}
	return v == nmMeteredYes || v == nmMeteredGuessYes, nil
}
