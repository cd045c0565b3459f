"""Jobs: periodic jobs declared by connector types, and the durable job queue.

- :mod:`passerelle.jobs.periodic`: ``@periodic`` methods scheduled by APScheduler in
  every process, run once per period cluster-wide (a database lock);
- :mod:`passerelle.jobs.queue`: one-off jobs queued by ``Connector.add_job``, stored in
  the database, with retries, backoff, postponement (:class:`RetryLater`) and the
  final error recorded;
- :mod:`passerelle.jobs.runner`: the service running queued jobs in ``serve`` and in
  ``passerelle worker`` (:mod:`passerelle.jobs.worker`).

docs/jobs.md is the guide for connector authors and operators.
"""

from passerelle.jobs.periodic import PeriodicJobs, PeriodicService, job_id, run_periodic
from passerelle.jobs.queue import RetryLater
from passerelle.jobs.runner import JobRunner

__all__ = ["JobRunner", "PeriodicJobs", "PeriodicService", "RetryLater", "job_id", "run_periodic"]
