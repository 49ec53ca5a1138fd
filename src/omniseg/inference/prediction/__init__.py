"""A trained model applied to files: the Predictor, prediction over files and folders (what ``omniseg predict`` calls),
classical segmentation over files (``omniseg segment``), the inputs a command line names, semantic masks to instances."""
