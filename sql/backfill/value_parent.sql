-- A row's tenant when it takes its parent's (`from: parent`): the tenant column of the parent row
-- <parent_column> references, one lookup by the parent's primary key (NULL while the parent has
-- none). <row>: the row, as the statement that includes this names it.
(SELECT parent_row.{tenant} FROM {parent} parent_row WHERE parent_row.{parent_key} = {row}.{parent_column})
