"""Runtime services shared by every job: Ray start-up, task lists with completion markers, progress, logs."""
