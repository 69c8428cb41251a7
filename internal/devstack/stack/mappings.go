package stack

import (
	"fmt"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/esm"
)

// streamMappings reads the DynamoDB events of the functions into event
// source mappings.
func streamMappings(fns []function) ([]esm.Mapping, error) {
	var out []esm.Mapping
	for _, f := range fns {
		for _, name := range sortedKeys(f.Events) {
			ev, _ := f.Events[name].(map[string]any)
			switch ev["Type"] {
			case "DynamoDB":
			case "HttpApi":
				continue
			default:
				return nil, fmt.Errorf("function %s event %s: event type %v is not supported by the local stack", f.ID, name, ev["Type"])
			}
			p, _ := ev["Properties"].(map[string]any)
			m := esm.Mapping{FunctionName: f.ID, MaximumRetryAttempts: -1, MaximumRecordAgeInSeconds: -1}
			m.StreamARN, _ = p["Stream"].(string)
			if m.StreamARN == "" {
				return nil, fmt.Errorf("function %s event %s: Stream is required", f.ID, name)
			}
			m.StartingPosition, _ = p["StartingPosition"].(string)
			if v, ok := number(p["BatchSize"]); ok {
				m.BatchSize = int(v)
			}
			if v, ok := number(p["MaximumBatchingWindowInSeconds"]); ok {
				m.MaximumBatchingWindow = time.Duration(v) * time.Second
			}
			m.BisectBatchOnFunctionError = truthy(p["BisectBatchOnFunctionError"])
			if v, ok := number(p["MaximumRetryAttempts"]); ok {
				m.MaximumRetryAttempts = int(v)
			}
			if v, ok := number(p["MaximumRecordAgeInSeconds"]); ok {
				m.MaximumRecordAgeInSeconds = int(v)
			}
			for _, t := range stringList(p["FunctionResponseTypes"]) {
				if t == "ReportBatchItemFailures" {
					m.ReportBatchItemFailures = true
				}
			}
			if fc, ok := p["FilterCriteria"].(map[string]any); ok {
				filters, _ := fc["Filters"].([]any)
				for _, fl := range filters {
					if pat, ok := fl.(map[string]any)["Pattern"].(string); ok {
						m.FilterPatterns = append(m.FilterPatterns, pat)
					}
				}
			}
			if dc, ok := p["DestinationConfig"].(map[string]any); ok {
				if of, ok := dc["OnFailure"].(map[string]any); ok {
					m.OnFailureDestination, _ = of["Destination"].(string)
				}
			}
			if enabled, ok := p["Enabled"]; ok && !truthy(enabled) {
				continue
			}
			out = append(out, m)
		}
	}
	return out, nil
}
