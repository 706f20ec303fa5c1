-- One seed option, read back by seed.sql through current_setting('datahub_seed.<name>').
SELECT set_config('datahub_seed.' || %(name)s, %(value)s, false)
