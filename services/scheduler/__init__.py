"""Scheduler: fires schedules as job-due events; one active instance holds a lease."""
