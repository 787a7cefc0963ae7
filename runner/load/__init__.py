"""One job's requests: when to send them (arrivals), what to send (workload), how to send and
read them (loadgen, sse); hands the run stage one `RequestRecord` per request and the client's
own health."""
