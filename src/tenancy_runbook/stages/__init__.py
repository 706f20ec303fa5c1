"""One module per stage, named like the stage's notebook (without its number) and its sql/ folder."""
