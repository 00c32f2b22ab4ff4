"""One module per platform; each is registered in ``menusync.platforms.registry``."""
