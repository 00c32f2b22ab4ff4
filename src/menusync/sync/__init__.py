"""Sync: jobs, batches, the queue, the runner, the planner, the service and its endpoints."""
