"""EnPrompt / EnLa experiments on a small offline CLIP stand-in (see docs/enla.md)."""
