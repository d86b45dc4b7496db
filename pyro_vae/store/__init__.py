"""What a run keeps on disk, as typed records: evaluations, baselines, metrics and
interpolation results, each read from untrusted JSON with every field checked
(:meth:`~.fields.Record.from_json`) and written back with :meth:`~.fields.Record.to_json`.

The layer sits below ``app`` and imports nothing of the package but the shared helpers: the
records are plain data (no torch), and the files they come from are read by ``app``'s run
directory (bounded, no link followed) and parsed by :mod:`.strict_json`."""
