package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// WriteText prints the report: one line per step with its timing, then
// the verdict and the remedy.
func (r Report) WriteText(w io.Writer) error {
	for _, s := range r.Steps {
		status := "ok"
		if s.Status == StatusFail {
			status = "FAIL"
		}
		if _, err := fmt.Fprintf(w, "%-4s %-12s %-4s %s: %s [%s]\n", status, s.Name, s.Transport, s.Target, s.Detail, duration(s.Took)); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "verdict: %s (exit %d): %s\n", r.Verdict.Name, r.Verdict.Code, r.Verdict.Summary)
	if r.Verdict.Remedy != "" {
		_, err := fmt.Fprintf(w, "remedy: %s\n", r.Verdict.Remedy)
		return err
	}
	return nil
}

// WriteJSON prints the report as one JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func duration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
