package media

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseSeconds parses a non-negative decimal number of seconds ("2",
// "2.000000", "1.5e0" is refused) exactly to the nanosecond; further
// digits are truncated. Integer arithmetic keeps the parse → format → parse
// round trip exact, which float64 would not.
func parseSeconds(s string) (time.Duration, error) {
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" || !allDigits(ip) || !allDigits(fp) || (strings.Contains(s, ".") && fp == "") {
		return 0, fmt.Errorf("%q is not a decimal number of seconds", s)
	}
	sec, err := strconv.ParseInt(ip, 10, 64)
	if err != nil || sec >= 1<<33 { // keeps sec*1e9 within int64
		return 0, fmt.Errorf("%q seconds is out of range", s)
	}
	if len(fp) > 9 {
		fp = fp[:9]
	}
	var ns int64
	if fp != "" {
		ns, _ = strconv.ParseInt(fp+strings.Repeat("0", 9-len(fp)), 10, 64)
	}
	return time.Duration(sec)*time.Second + time.Duration(ns), nil
}

// formatSeconds writes d as decimal seconds with 3, 6 or 9 fractional
// digits, the fewest that are exact.
func formatSeconds(d time.Duration) string {
	sec, ns := int64(d/time.Second), int64(d%time.Second)
	switch {
	case ns%1e6 == 0:
		return fmt.Sprintf("%d.%03d", sec, ns/1e6)
	case ns%1e3 == 0:
		return fmt.Sprintf("%d.%06d", sec, ns/1e3)
	}
	return fmt.Sprintf("%d.%09d", sec, ns)
}

// maxPresentation bounds MPD durations: about 2.7 years.
const maxPresentation = 1000 * MaxSegmentDuration

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseISODuration parses the xs:duration subset MPDs use for times:
// PnDTnHnMn.nS (years and months are refused: they have no fixed length).
func parseISODuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not an ISO 8601 duration", s)
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return 0, bad
	}
	var total time.Duration
	inTime := false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, bad
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return 0, bad
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, bad
		}
		num, unit := rest[:i], rest[i]
		rest = rest[i+1:]
		v, err := parseSeconds(num)
		if err != nil {
			return 0, bad
		}
		var mul time.Duration
		switch {
		case unit == 'D' && !inTime:
			mul = 24 * 60 * 60
		case unit == 'H' && inTime:
			mul = 60 * 60
		case unit == 'M' && inTime:
			mul = 60
		case unit == 'S' && inTime:
			mul = 1
		default:
			return 0, bad
		}
		if v > maxPresentation/mul {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		total += v * mul
		if total > maxPresentation {
			return 0, fmt.Errorf("%q is out of range", s)
		}
	}
	return total, nil
}
