"""One job's requests: when to send them (arrivals), what to send (workload), how to send and
read them (loadgen runs a job: schedule, when each request goes and when the job stops;
exchange, one request on the wire; sse, its answer); hands the run stage one `RequestRecord`
per request and the client's own health."""
