"""One reader per external trace format; each returns a RawTrace for build_workload()."""
