"""How well the box plays along, judged by tools nobody here wrote: ``python -m tools.evaluate``.

``pieces`` writes the judge's own material (known chords and beats), ``recordings`` and
``annotate`` bring real recordings with essentia's annotations, ``systems`` runs the box and its
floor (random notes in the key) and ceiling (a basic-pitch transcription), ``metrics`` scores them
with mir_eval, ``run`` pools the scores into the README's table.
"""
