"""Publishing a run to the Hugging Face Hub (`hub`, `python -m train.publish`) with its model card (`model_card`)."""
