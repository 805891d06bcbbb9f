"""A minimal OTLP/gRPC trace receiver for the benchmarks: accepts every export, counts the spans
and prints the count when stopped (SIGTERM). Usage: python3 scripts/otlp_sink.py PORT

Needs the PyPI packages grpcio and opentelemetry-proto.
"""

import signal
import sys
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self.spans = 0

    def Export(self, request, context):  # noqa: N802 - the service's method name
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans += len(scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    sink = Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    server.start()

    def stop(*_):
        server.stop(0)
        print(sink.spans, flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
