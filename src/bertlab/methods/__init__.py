"""The paper's fine-tuning methods, one file each: re-initialising top layers, mixout, pre-trained weight decay."""
