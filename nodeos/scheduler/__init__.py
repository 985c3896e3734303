"""The scheduler: binds each unscheduled pod to the best node (issue 3).

``Scheduler(api, recorder).run`` is the component; the rest is its parts:
``info`` (pods and nodes parsed once), ``cache`` (what each node holds,
assumed binds included), ``predicates`` and ``priorities`` (pure functions),
``algorithm`` (sampling, filter, score, pick), ``queue`` (active, backoff,
unschedulable) and ``events`` (Events off the hot path).
"""

from nodeos.scheduler.scheduler import Scheduler

__all__ = ["Scheduler"]
