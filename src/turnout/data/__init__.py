"""Data files shipped with turnout: the model catalog and redistributable datasets."""
