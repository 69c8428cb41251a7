package stack

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/esm"
)

// streamMappings reads the DynamoDB events of the functions and the
// AWS::Lambda::EventSourceMapping resources (resolved properties by logical
// id, FunctionName already resolved to a function name) into event source
// mappings.
func streamMappings(fns []function, resources map[string]map[string]any) ([]esm.Mapping, error) {
	var out []esm.Mapping
	for _, f := range fns {
		for _, name := range slices.Sorted(maps.Keys(f.Events)) {
			ev, _ := f.Events[name].(map[string]any)
			switch ev["Type"] {
			case "DynamoDB":
			case "HttpApi", "SQS": // SQS events: sqsMappings
				continue
			default:
				return nil, fmt.Errorf("function %s event %s: event type %v is not supported by the local stack", f.ID, name, ev["Type"])
			}
			p, _ := ev["Properties"].(map[string]any)
			stream, _ := p["Stream"].(string)
			if stream == "" {
				return nil, fmt.Errorf("function %s event %s: Stream is required", f.ID, name)
			}
			if m, on := streamMapping(f.ID, stream, p); on {
				out = append(out, m)
			}
		}
	}
	known := map[string]bool{}
	for _, f := range fns {
		known[f.ID] = true
	}
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		p := resources[id]
		fn, _ := p["FunctionName"].(string)
		if !known[fn] {
			return nil, fmt.Errorf("event source mapping %s: FunctionName %v is not a function of this stack", id, p["FunctionName"])
		}
		stream, _ := p["EventSourceArn"].(string)
		if strings.HasPrefix(stream, "arn:aws:sqs:") {
			continue // sqsMappings
		}
		if !strings.Contains(stream, ":dynamodb:") {
			return nil, fmt.Errorf("event source mapping %s: EventSourceArn %v: only DynamoDB streams are supported by the local stack", id, p["EventSourceArn"])
		}
		if m, on := streamMapping(fn, stream, p); on {
			out = append(out, m)
		}
	}
	return out, nil
}

// streamMapping reads the settings a SAM DynamoDB event and an
// AWS::Lambda::EventSourceMapping share (same names, same meaning); on is
// false for a disabled mapping.
func streamMapping(fn, stream string, p map[string]any) (m esm.Mapping, on bool) {
	m = esm.Mapping{FunctionName: fn, StreamARN: stream, MaximumRetryAttempts: -1, MaximumRecordAgeInSeconds: -1}
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
	if v, ok := number(p["ParallelizationFactor"]); ok {
		m.ParallelizationFactor = int(v)
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
		return m, false
	}
	return m, true
}

// sqsMappings reads the SQS events of the functions (SAM's Queue is the
// queue ARN) and the AWS::Lambda::EventSourceMapping resources whose
// EventSourceArn is a queue. queue maps a queue ARN to its URL and whether
// it is FIFO; ok is false for a queue not in this stack.
func sqsMappings(fns []function, resources map[string]map[string]any, queue func(arn string) (url string, fifo, ok bool)) ([]esm.SQSMapping, error) {
	var out []esm.SQSMapping
	add := func(what, fn, arn string, p map[string]any) error {
		url, fifo, ok := queue(arn)
		if !ok {
			return fmt.Errorf("%s: queue %v is not an AWS::SQS::Queue of this stack", what, arn)
		}
		m := esm.SQSMapping{FunctionName: fn, QueueARN: arn, QueueURL: url, FIFO: fifo}
		if v, ok := number(p["BatchSize"]); ok {
			m.BatchSize = int(v)
		}
		if v, ok := number(p["MaximumBatchingWindowInSeconds"]); ok {
			m.MaximumBatchingWindow = time.Duration(v) * time.Second
		}
		for _, t := range stringList(p["FunctionResponseTypes"]) {
			if t == "ReportBatchItemFailures" {
				m.ReportBatchItemFailures = true
			}
		}
		if sc, ok := p["ScalingConfig"].(map[string]any); ok {
			if v, ok := number(sc["MaximumConcurrency"]); ok {
				m.MaximumConcurrency = int(v)
			}
		}
		if enabled, ok := p["Enabled"]; ok && !truthy(enabled) {
			return nil
		}
		out = append(out, m)
		return nil
	}
	for _, f := range fns {
		for _, name := range slices.Sorted(maps.Keys(f.Events)) {
			ev, _ := f.Events[name].(map[string]any)
			if ev["Type"] != "SQS" {
				continue
			}
			p, _ := ev["Properties"].(map[string]any)
			arn, _ := p["Queue"].(string)
			if arn == "" {
				return nil, fmt.Errorf("function %s event %s: Queue is required", f.ID, name)
			}
			if err := add(fmt.Sprintf("function %s event %s", f.ID, name), f.ID, arn, p); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		p := resources[id]
		arn, _ := p["EventSourceArn"].(string)
		if !strings.HasPrefix(arn, "arn:aws:sqs:") {
			continue
		}
		fn, _ := p["FunctionName"].(string)
		if err := add("event source mapping "+id, fn, arn, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}
