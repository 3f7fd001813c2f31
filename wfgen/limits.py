"""Quotas and limits of Cloud Workflows (the quotas page), in one place: the
engine enforces them, and the job model checks a spec against them before
rendering. Dependency-free, so `generate` pays nothing to import it."""

MAX_STEPS = 100_000  # steps per execution
MAX_EXPRESSION_CHARS = 400  # characters of one expression (the text inside ${...})
MAX_CALL_DEPTH = 20  # call stack depth (subworkflows, predicates)
MAX_VARIABLE_BYTES = 512 * 1024  # all variables of an execution together
MAX_STRING_BYTES = 256 * 1024
MAX_SOURCE_BYTES = 128 * 1024
MAX_ASSIGNMENTS = 50  # per assign step
MAX_CONDITIONS = 50  # per switch step
MAX_BRANCHES = 10  # per parallel step
MAX_CONCURRENT_BRANCHES = 20  # branches/iterations running at once
MAX_PARALLEL_DEPTH = 2  # nesting of parallel steps
