# The library's sources, shared by the normal build and the fuzz build.
set(HRL_LIB_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/lib/io/file.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/io/io_backend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/io/uring_backend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/io/aio_backend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/log/superblock.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/log/record.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/log/dirty_bitmap.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/log/format_log.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/log/log_reader.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/log/log_writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/log/record_applier.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/net/frame.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/net/messages.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/net/resync_messages.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/net/certs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/net/tls.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/repl/replica_state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/repl/session.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/repl/resync_session.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/dm/dm_control.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/resync/hash_tree.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/resync/chunk_reader.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/resync/compare.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lib/history/undo_journal.cpp
)
set(HRL_LIB_INCLUDES ${CMAKE_CURRENT_LIST_DIR}/lib ${CMAKE_CURRENT_LIST_DIR}/../include)
