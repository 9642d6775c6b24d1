"""The cogs: each module is a discord.py extension with ``async def setup(bot)``, loaded by
``NewsdeskBot.setup_hook`` (``bot.client.INITIAL_EXTENSIONS``). A cog imports the shared helpers
(``bot.interactions``, ``bot.checks``, ``bot.formatting``…), never the client or another cog;
the bot's type only under ``TYPE_CHECKING``."""
