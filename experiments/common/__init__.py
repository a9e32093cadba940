"""Infrastructure shared by all experiments, e.g. the metric writer in
:mod:`experiments.common.writers`."""
