"""The four pre-question templates released with QVix, vendored byte for byte.

Source: kai-wen-yang/QVix @ ed266a8, ``utils/prompt.py`` (the strings only; no code).
Each line is one string literal so trailing spaces survive formatters; the released
``prompt_hand_v1`` has a trailing space after its second "xxxx", kept here. SHA-256 of
each template is pinned in tests/methods/qvix/prompts_test.py.

The templates are distributed under the following licence:

  BSD 3-Clause License

  Copyright (c) 2023, Kaiwen Yang

  Redistribution and use in source and binary forms, with or without
  modification, are permitted provided that the following conditions are met:

  1. Redistributions of source code must retain the above copyright notice, this
     list of conditions and the following disclaimer.

  2. Redistributions in binary form must reproduce the above copyright notice,
     this list of conditions and the following disclaimer in the documentation
     and/or other materials provided with the distribution.

  3. Neither the name of the copyright holder nor the names of its
     contributors may be used to endorse or promote products derived from
     this software without specific prior written permission.

  THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
  AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
  IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
  DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
  FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
  DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
  SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
  CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
  OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
  OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

TEMPLATES: dict[str, str] = {
  "hand_v1": (
    'I need to answer the following main question about an image: {}\n'
    '\n'
    'Your goal is to design 4 pre-questions. Pre-questions should focus on important contextual information in the image useful for answering the main question.\n'
    '\n'
    'Here are the rules you should follow when listing the sub-questions:\n'
    'Each pre-question should be short and easy to understand.\n'
    'Pre-questions should focus on context visual clues of the image.\n'
    'Pre-questions should provide clues to answer the main question.\n'
    '\n'
    'Format Example:\n'
    'Pre-question 1: xxxx\n'
    'Pre-question 2: xxxx \n'
    'Pre-question 3: xxxx\n'
    'Pre-question 4: xxxx'
  ),
  "gptrewrite_v1": (
    'I require assistance in formulating a response to a central inquiry regarding a specific image: \n'
    '{}\n'
    '\n'
    'The task is to create 4 preliminary questions. These questions should zero in on crucial contextual details within the image that are pertinent to addressing the main inquiry.\n'
    '\n'
    'Guidelines for the preliminary questions:\n'
    '\n'
    'Each question must be concise and easily comprehensible.\n'
    'They should concentrate on contextual visual elements present in the image.\n'
    'These questions ought to offer insights that aid in responding to the main question.\n'
    'Proposed Format:\n'
    'Preliminary Question 1: xxxx\n'
    'Preliminary Question 2: xxxx\n'
    'Preliminary Question 3: xxxx\n'
    'Preliminary Question 4: xxx'
  ),
  "gptrewrite_v2": (
    'I am tasked with addressing a primary inquiry regarding a specific image: \n'
    '{}\n'
    '\n'
    'My objective is to formulate 4 preliminary questions. These questions are aimed at eliciting critical contextual details from the image, which are pivotal for comprehensively responding to the main inquiry.\n'
    '\n'
    'Guidelines for crafting the preliminary questions:\n'
    '\n'
    'Each question must be concise and easily comprehensible.\n'
    'The focus should be on discerning visual cues within the image that offer context.\n'
    'These questions are intended to unearth insights that facilitate answering the main question.\n'
    'Formatted Example:\n'
    'Preliminary Question 1: [Your Question Here]\n'
    'Preliminary Question 2: [Your Question Here]\n'
    'Preliminary Question 3: [Your Question Here]\n'
    'Preliminary Question 4: [Your Question Here]'
  ),
  "gptrewrite_v3": (
    'I am required to address a primary inquiry related to a specific image: \n'
    '{}\n'
    '\n'
    'The task is to formulate 4 preliminary questions. These questions are intended to extract key contextual details from the image that are crucial for responding accurately to the primary inquiry.\n'
    '\n'
    'Guidelines for creating the preliminary questions:\n'
    '\n'
    'Each question should be concise and straightforward for ease of understanding.\n'
    'The focus should be on discernible contextual elements within the image.\n'
    'These questions should aid in gathering insights necessary to address the primary inquiry.\n'
    'Example of the format:\n'
    'Preliminary Question 1: [Question text]\n'
    'Preliminary Question 2: [Question text]\n'
    'Preliminary Question 3: [Question text]\n'
    'Preliminary Question 4: [Question text]'
  ),
}
