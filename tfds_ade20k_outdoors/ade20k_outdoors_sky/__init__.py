"""ade20k_outdoors_sky dataset (see ade20k_outdoors_sky_dataset_builder.py)."""
