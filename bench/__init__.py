"""Benchmarks of the running suite: `make bench` (python -m bench).

Everything runs for real, each server in its own process: identity and crm on a dedicated
database (givance_bench) and RabbitMQ vhost (givance-bench), a bare gRPC echo server as the
baseline, and one load client (bench.load) that measures the echo server and the services
alike. Figures go to stdout, one line each: `bench NAME: VALUE UNIT key=value ...`;
progress goes to stderr and the servers' logs to build/bench/.
"""
