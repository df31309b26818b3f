"""Training stages of the method (docs/method.md): ``teacher`` (stage 0), ``transfer`` (stage 1),
``adapt`` (stage 2), ``pipeline`` (all of them, resumable) and ``ablation`` (stage-1 rows);
``common`` holds what they share (data fields, validation sets and loop), ``terms`` their loss tables."""
