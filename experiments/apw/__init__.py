"""APW (adaptive priority reweighing) experiments: Adult, COMPAS, German, Law school."""
