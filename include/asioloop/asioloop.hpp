//
// asioloop/asioloop.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// Brings in all of asioloop.
//

#ifndef ASIOLOOP_ASIOLOOP_HPP
#define ASIOLOOP_ASIOLOOP_HPP

#include <asioloop/clock.hpp>
#include <asioloop/compose.hpp>
#include <asioloop/concurrent_future.hpp>
#include <asioloop/error.hpp>
#include <asioloop/event_loop.hpp>
#include <asioloop/future.hpp>
#include <asioloop/handle.hpp>
#include <asioloop/loop_thread.hpp>
#include <asioloop/process_pool.hpp>
#include <asioloop/queue.hpp>
#include <asioloop/sleep.hpp>
#include <asioloop/sync.hpp>
#include <asioloop/task.hpp>
#include <asioloop/task_group.hpp>
#include <asioloop/thread_pool.hpp>
#include <asioloop/version.hpp>

#endif // ASIOLOOP_ASIOLOOP_HPP
